{#-
  The operations that make the target equal to the new version after versions whose ops partly
  landed (a version that failed or was stopped after publishing began): whatever part of them
  was applied, every row of the new export is written (INSERT when the last applied version
  lacks its key, UPDATE otherwise), and every key of the last applied version or of a diverged
  version that the new export lacks is deleted. The consumer's version-conditioned writes make
  each op win over the diverged versions' (the new version is not older than any of them).
  Output: the same shape as delta.sql (op, then the new version's columns in file order); a
  DELETE carries the last applied row's values where it has them, NULL otherwise.
  Every side reads exactly its own files ("$path").
-#}
WITH n AS (
  SELECT {% for name in new_columns %}{{ name | ident }}, {% endfor %}1 AS {{ internal.side | ident }}
  FROM {{ database | ident }}.{{ new_table | ident }}
  WHERE "$path" IN ({% for f in new_files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
),
{% if previous %}
p AS (
  SELECT {% for name in previous.columns %}{{ name | ident }}, {% endfor %}1 AS {{ internal.side | ident }}
  FROM {{ database | ident }}.{{ previous.table | ident }}
  WHERE "$path" IN ({% for f in previous.files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
),
{% endif %}
gone AS (
{% if previous %}
  SELECT {% for side_name, new_name in previous.key %}{{ side_name | ident }} AS {{ new_name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}

  FROM p
  UNION
{% endif %}
{% for side in diverged %}
  SELECT {% for side_name, new_name in side.key %}{{ side_name | ident }} AS {{ new_name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}

  FROM {{ database | ident }}.{{ side.table | ident }}
  WHERE "$path" IN ({% for f in side.files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
{% if not loop.last %}
  UNION
{% endif %}
{% endfor %}
)
SELECT
  {% if previous %}CASE WHEN p.{{ internal.side | ident }} IS NULL THEN 'INSERT' ELSE 'UPDATE' END{% else %}'INSERT'{% endif %} AS op,
{% for name in new_columns %}
  n.{{ name | ident }}{% if not loop.last %},{% endif +%}
{% endfor %}
FROM n
{% if previous %}
LEFT JOIN p
  ON {% for side_name, new_name in previous.key %}p.{{ side_name | ident }} = n.{{ new_name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}

{% endif %}
UNION ALL
SELECT
  'DELETE' AS op,
{% for prev_name, new_name, is_key in delete_output %}
  {% if is_key %}g.{{ new_name | ident }}{% elif previous and prev_name is not none %}p.{{ prev_name | ident }}{% else %}CAST(NULL AS VARCHAR){% endif %} AS {{ new_name | ident }}{% if not loop.last %},{% endif +%}
{% endfor %}
FROM gone AS g
{% if previous %}
LEFT JOIN p
  ON {% for side_name, new_name in previous.key %}p.{{ side_name | ident }} = g.{{ new_name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}

{% endif %}
WHERE NOT EXISTS (
  SELECT 1 FROM n
  WHERE {% for name in new_key %}n.{{ name | ident }} = g.{{ name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}

)
