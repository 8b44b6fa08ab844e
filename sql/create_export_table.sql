{#-
  One export version as an external table over every object under its S3 prefix.
  Every column is a STRING (OpenCSVSerde yields strings: '' for an empty field, NULL for a
  missing one); the trailing extra column catches rows that carry more fields than declared.
  escapeChar: OpenCSVSerde's reader treats a backslash as an escape character unless told
  otherwise (Trino maps an absent or '"' escapeChar to '\'), so "no escape character" is
  spelled '\0', which Trino reads as "escaping disabled". Doubled quotes inside a quoted
  field are understood either way.
-#}
CREATE EXTERNAL TABLE IF NOT EXISTS {{ database | hive_ident }}.{{ table | hive_ident }} (
{% for column in columns %}
  {{ column | hive_ident }} STRING,
{% endfor %}
  {{ extra_column | hive_ident }} STRING
)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
WITH SERDEPROPERTIES (
  'separatorChar' = {{ delimiter | hive_literal }},
  'quoteChar' = {{ quote | hive_literal }},
{% if escape %}
  'escapeChar' = {{ escape | hive_literal }}
{% else %}
  'escapeChar' = '\0'
{% endif %}
)
LOCATION {{ location | s3_location }}
{% if header %}
TBLPROPERTIES ('skip.header.line.count' = '1')
{% endif %}
