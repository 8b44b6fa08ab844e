{#- The first version of a table: every row is an INSERT (same shape as delta.sql). -#}
SELECT
  'INSERT' AS op,
{% for column in columns %}
  {{ column | ident }}{% if not loop.last %},{% endif +%}
{% endfor %}
FROM {{ database | ident }}.{{ table | ident }}
