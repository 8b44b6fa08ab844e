{#-
  Drift between a table's last applied export (e) and its live target rows (t): one full outer
  join on the key, one row per drifted key (the shape is snapcdc.steps.drift's).
  The target side is the verify's image of a DynamoDB export of the target table
  (snapcdc.model.target_image): positional columns, every value tagged ('S' text, 'N' NULL,
  'A' absent, 'X' anything else), tombstones marked live = 'false'. The export side is tagged
  the same way here: the pipeline writes an export's NULL as NULL and any other value as the
  string itself, so a target row the pipeline wrote compares equal to its export row exactly.
  The export is read from exactly the files the head records ("$path"), as the delta does.
-#}
WITH e AS (
  SELECT {% for name in columns %}{{ name | ident }}, {% endfor %}1 AS {{ internal.side | ident }}
  FROM {{ database | ident }}.{{ source_table | ident }}
  WHERE "$path" IN ({% for f in files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
),
t AS (
  SELECT "row_key", "version", {% for i in key_positions %}"k{{ i }}", {% endfor %}{% for i in column_positions %}"c{{ i }}", {% endfor %}"extra", "attrs", 1 AS {{ internal.side | ident }}
  FROM {{ database | ident }}.{{ target_table | ident }}
  WHERE "live" = 'true'
)
SELECT
  CASE
    WHEN t.{{ internal.side | ident }} IS NULL THEN 'missing'
    WHEN e.{{ internal.side | ident }} IS NULL THEN 'extra'
    ELSE 'different'
  END AS "kind",
  CASE WHEN t.{{ internal.side | ident }} IS NOT NULL AND e.{{ internal.side | ident }} IS NOT NULL THEN concat_ws(',',
{% for name in columns %}
    CASE WHEN t."c{{ loop.index0 }}" IS DISTINCT FROM coalesce('S' || e.{{ name | ident }}, 'N') THEN {{ name | literal }} END,
{% endfor %}
    nullif(t."extra", ''),
    nullif(t."attrs", '')
  ) END AS "columns",
  t."row_key",
  t."version",
{% for i in key_positions %}
  t."k{{ i }}",
{% endfor %}
{% for name in columns %}
  e.{{ name | ident }}{% if not loop.last %},{% endif +%}
{% endfor %}
FROM e
FULL OUTER JOIN t
  ON {% for name in key %}t."k{{ loop.index0 }}" = 'S' || e.{{ name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}

WHERE e.{{ internal.side | ident }} IS NULL
  OR t.{{ internal.side | ident }} IS NULL
  OR t."extra" <> ''
  OR t."attrs" <> ''
{% for name in columns %}
  OR t."c{{ loop.index0 }}" IS DISTINCT FROM coalesce('S' || e.{{ name | ident }}, 'N')
{% endfor %}
