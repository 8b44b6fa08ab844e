{#-
  The operations that turn the previous version's rows into the new version's: one full outer
  join on the key, one row per changed key. Non-key columns are matched by name and compared
  NULL-safely; a column present on one side only compares as NULL, so when columns are added
  or removed every kept row is an UPDATE and the target converges to the new shape. So is every
  kept row when a column's spelling changed only in case (respelled): Athena folds names, the
  target keeps each row's spelling.
  Output: op, then the new version's columns in file order; a DELETE carries the old values
  (NULL for a column the old version did not have).
  Each side reads exactly the files its version was applied from ("$path": Athena reads every
  object under a LOCATION, and a version's prefix may hold more than its export).
-#}
SELECT
  CASE
    WHEN p.{{ internal.side | ident }} IS NULL THEN 'INSERT'
    WHEN n.{{ internal.side | ident }} IS NULL THEN 'DELETE'
    ELSE 'UPDATE'
  END AS op,
{% for prev_name, new_name in output %}
  {% if prev_name is none %}
  n.{{ new_name | ident }}{% if not loop.last %},{% endif +%}
  {% else %}
  CASE WHEN n.{{ internal.side | ident }} IS NULL THEN p.{{ prev_name | ident }} ELSE n.{{ new_name | ident }} END AS {{ new_name | ident }}{% if not loop.last %},{% endif +%}
  {% endif %}
{% endfor %}
FROM (
  SELECT {% for name in prev_columns %}{{ name | ident }}, {% endfor %}1 AS {{ internal.side | ident }}
  FROM {{ database | ident }}.{{ prev_table | ident }}
  {% if prev_files %}
  WHERE "$path" IN ({% for f in prev_files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
  {% endif %}
) AS p
FULL OUTER JOIN (
  SELECT {% for name in new_columns %}{{ name | ident }}, {% endfor %}1 AS {{ internal.side | ident }}
  FROM {{ database | ident }}.{{ new_table | ident }}
  {% if new_files %}
  WHERE "$path" IN ({% for f in new_files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
  {% endif %}
) AS n
  ON {% for prev_name, new_name in key %}p.{{ prev_name | ident }} = n.{{ new_name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}

{% if respelled %}
{# a column's spelling changed: every kept row is an UPDATE #}
{% else %}
WHERE p.{{ internal.side | ident }} IS NULL
  OR n.{{ internal.side | ident }} IS NULL
{% for prev_name, new_name in compared %}
  OR {% if prev_name is none %}NULL{% else %}p.{{ prev_name | ident }}{% endif %} IS DISTINCT FROM {% if new_name is none %}NULL{% else %}n.{{ new_name | ident }}{% endif %}

{% endfor %}
{% endif %}
