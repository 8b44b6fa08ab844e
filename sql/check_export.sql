{#-
  Data checks on one export version, as a single row:
  row_count; duplicate_keys (key values occurring more than once) with a sorted sample of up
  to five; empty_keys (a key column NULL or ''); ragged_rows (a missing field makes the last
  declared column NULL, since OpenCSVSerde reads an empty field as ''; an extra field lands in
  the extra column).
-#}
WITH rows_checked AS (
  SELECT
    count(*) AS row_count,
    count_if({% for k in key %}{{ k | ident }} IS NULL OR {{ k | ident }} = ''{% if not loop.last %} OR {% endif %}{% endfor %}) AS empty_keys,
    count_if({{ columns[-1] | ident }} IS NULL OR {{ extra_column | ident }} IS NOT NULL) AS ragged_rows
  FROM {{ database | ident }}.{{ table | ident }}
  {% if files %}
  WHERE "$path" IN ({% for f in files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
  {% endif %}
),
duplicated AS (
  SELECT {% if key | length == 1 %}{{ key[0] | ident }}{% else %}concat_ws('|'{% for k in key %}, {{ k | ident }}{% endfor %}){% endif %} AS key_text
  FROM {{ database | ident }}.{{ table | ident }}
  {% if files %}
  WHERE "$path" IN ({% for f in files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
  {% endif %}
  GROUP BY {% for k in key %}{{ k | ident }}{% if not loop.last %}, {% endif %}{% endfor %}

  HAVING count(*) > 1
),
duplicates AS (
  SELECT
    (SELECT count(*) FROM duplicated) AS duplicate_keys,
    (
      SELECT array_join(array_agg(key_text ORDER BY key_text), ', ')
      FROM (SELECT key_text FROM duplicated ORDER BY key_text LIMIT 5) AS sample
    ) AS duplicate_sample
)
SELECT
  r.row_count,
  d.duplicate_keys,
  d.duplicate_sample,
  r.empty_keys,
  r.ragged_rows
FROM rows_checked AS r
CROSS JOIN duplicates AS d
