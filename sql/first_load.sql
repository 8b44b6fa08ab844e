{#- The first version of a table: every row is an INSERT (same shape as delta.sql), read from
    exactly the version's files ("$path", as in delta.sql). -#}
SELECT
  'INSERT' AS op,
{% for column in columns %}
  {{ column | ident }}{% if not loop.last %},{% endif +%}
{% endfor %}
FROM {{ database | ident }}.{{ table | ident }}
{% if files %}
WHERE "$path" IN ({% for f in files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
{% endif %}
