{#-
  Data checks on one export version, as a single row:
  row_count; duplicate_keys (key values occurring more than once) with a sorted sample of up
  to five; empty_keys (a key column NULL or ''); ragged_rows (a missing field makes the last
  declared column NULL, since OpenCSVSerde reads an empty field as ''; an extra field lands in
  the extra column); blank_lines (a line without fields: empty, whitespace only in a table of
  more than one column, or the rest of a quoted field a line break cut: OpenCSVSerde makes such
  a line a row of NULLs), which the other checks leave out. Athena gives no line numbers, so
  each kind of bad row comes with a sample: the "$path" of the object holding one, and for
  ragged rows and empty keys the fields Athena read from it, quoted, and their count (Trino's
  filter, transform, array_join, cardinality: https://trino.io/docs/current/functions/array.html;
  OpenCSVSerDe cannot hold a line break in a quoted value:
  https://docs.aws.amazon.com/athena/latest/ug/csv-serde.html).
  For the largest row by each AWS size limit, an upper bound of its size
  in UTF-8 bytes and its key: the target item (DynamoDB counts names and values), the Kinesis
  record carrying the row's op alone (aggregation framing, JSON data, partition key twice) and
  the item's partition key. *_overhead is what every row
  adds whatever its values (snapcdc.limits, NULLs included); the row adds its values' bytes and
  what JSON escaping adds to them. The escaped bytes (quote and backslash doubled, a control
  character as six) are counted only for rows that six bytes per byte would put over a limit.
-#}
WITH measured AS (
  SELECT
    *,
    {{ internal.suspect | ident }} AND NOT {{ internal.blank | ident }} AND ({% for k in key %}{{ k | ident }} IS NULL OR {{ k | ident }} = ''{% if not loop.last %} OR {% endif %}{% endfor %}) AS {{ internal.empty_key | ident }},
    {{ internal.suspect | ident }} AND NOT {{ internal.blank | ident }} AND ({{ columns[-1] | ident }} IS NULL OR {{ extra_column | ident }} IS NOT NULL) AS {{ internal.ragged | ident }},
    {# the fields Athena read from a bad row (missing ones are NULL, and only ever at the end) #}
    CASE WHEN {{ internal.suspect | ident }} AND NOT {{ internal.blank | ident }} THEN
      filter(ARRAY[{% for c in columns %}{{ c | ident }}, {% endfor %}{{ extra_column | ident }}], x -> x IS NOT NULL)
    END AS {{ internal.fields | ident }}
  FROM (
  SELECT
    {% for c in columns %}{{ c | ident }}, {% endfor %}{{ extra_column | ident }},
    ({% for c in columns %}coalesce(length(to_utf8({{ c | ident }})), 0){% if not loop.last %} + {% endif %}{% endfor %}) AS {{ internal.row_bytes | ident }},
    ({% for k in key %}coalesce(length(to_utf8({{ k | ident }})), 0){% if not loop.last %} + {% endif %}{% endfor %}) AS {{ internal.key_bytes | ident }},
    ({% if key | length == 1 %}{{ key[0] | ident }}{% else %}concat_ws('|'{% for k in key %}, {{ k | ident }}{% endfor %}){% endif %}) AS {{ internal.key_text | ident }},
    {# the rows the data checks look at more closely; all others pass them (cheap to tell) #}
    ({% for k in key %}{{ k | ident }} IS NULL OR {{ k | ident }} = ''{% if not loop.last %} OR {% endif %}{% endfor %} OR {{ columns[-1] | ident }} IS NULL OR {{ extra_column | ident }} IS NOT NULL) AS {{ internal.suspect | ident }},
    CASE WHEN {% for k in key %}{{ k | ident }} IS NULL OR {{ k | ident }} = ''{% if not loop.last %} OR {% endif %}{% endfor %} OR {{ columns[-1] | ident }} IS NULL OR {{ extra_column | ident }} IS NOT NULL THEN ({% if columns | length > 1 %}({{ columns[0] | ident }} IS NULL OR regexp_like({{ columns[0] | ident }}, '^[ \t]*$'))
      AND coalesce({% for c in columns[1:] %}{{ c | ident }}, {% endfor %}{{ extra_column | ident }}) IS NULL
    {%- else %}{{ columns[0] | ident }} IS NULL AND {{ extra_column | ident }} IS NULL{% endif %}) ELSE false END AS {{ internal.blank | ident }},
    CASE WHEN {% for k in key %}{{ k | ident }} IS NULL OR {{ k | ident }} = ''{% if not loop.last %} OR {% endif %}{% endfor %} OR {{ columns[-1] | ident }} IS NULL OR {{ extra_column | ident }} IS NOT NULL THEN "$path" END AS {{ internal.path | ident }}
  FROM {{ database | ident }}.{{ table | ident }}
  {% if files %}
  WHERE "$path" IN ({% for f in files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
  {% endif %}
  ) AS lines
),
rows_checked AS (
  SELECT
    count(*) AS row_count,
{% if size_limits %}
    max({{ internal.item_bytes | ident }}) AS largest_item_bytes,
    max_by({{ internal.key_text | ident }}, {{ internal.item_bytes | ident }}) AS largest_item_key,
    max({{ internal.record_bytes | ident }}) AS largest_record_bytes,
    max_by({{ internal.key_text | ident }}, {{ internal.record_bytes | ident }}) AS largest_record_key,
    max({{ internal.pk_bytes | ident }}) AS largest_pk_bytes,
    max_by({{ internal.key_text | ident }}, {{ internal.pk_bytes | ident }}) AS largest_pk_key
{% else %}
    {# not measured (snapcdc diff): the unused columns below are never computed #}
    CAST(NULL AS bigint) AS largest_item_bytes,
    CAST(NULL AS varchar) AS largest_item_key,
    CAST(NULL AS bigint) AS largest_record_bytes,
    CAST(NULL AS varchar) AS largest_record_key,
    CAST(NULL AS bigint) AS largest_pk_bytes,
    CAST(NULL AS varchar) AS largest_pk_key
{% endif %}
  FROM (
  SELECT
    *,
    {{ item_overhead }} + {{ internal.row_bytes | ident }} + 2 * {{ internal.key_bytes | ident }}{% if key | length > 1 %}

      + 2 * (CASE WHEN {{ item_overhead }} + {{ internal.row_bytes | ident }} + 12 * {{ internal.key_bytes | ident }} > {{ item_limit }}
        THEN {% for k in key %}coalesce(length(to_utf8(regexp_replace(regexp_replace({{ k | ident }}, '["\\]', '__'), '[\x00-\x1f]', '______'))), 0){% if not loop.last %} + {% endif %}{% endfor %} - {{ internal.key_bytes | ident }}
        ELSE 5 * {{ internal.key_bytes | ident }} END){% endif %} AS {{ internal.item_bytes | ident }},
    {{ record_overhead }}
      + (CASE WHEN {{ record_overhead }} + 6 * ({{ internal.row_bytes | ident }} + {{ internal.key_bytes | ident }}) > {{ record_limit }}
        THEN {% for c in columns + key %}coalesce(length(to_utf8(regexp_replace(regexp_replace({{ c | ident }}, '["\\]', '__'), '[\x00-\x1f]', '______'))), 0){% if not loop.last %} + {% endif %}{% endfor %}

        ELSE 6 * ({{ internal.row_bytes | ident }} + {{ internal.key_bytes | ident }}) END) AS {{ internal.record_bytes | ident }},
    {{ pk_overhead }} + {{ internal.key_bytes | ident }}{% if key | length > 1 %}

      + (CASE WHEN {{ pk_overhead }} + 6 * {{ internal.key_bytes | ident }} > {{ pk_limit }}
        THEN {% for k in key %}coalesce(length(to_utf8(regexp_replace(regexp_replace({{ k | ident }}, '["\\]', '__'), '[\x00-\x1f]', '______'))), 0){% if not loop.last %} + {% endif %}{% endfor %} - {{ internal.key_bytes | ident }}
        ELSE 5 * {{ internal.key_bytes | ident }} END){% endif %} AS {{ internal.pk_bytes | ident }}
  FROM measured
  ) AS sized
),
bad_rows AS (
  {# only the rows that fail a data check: their samples cost nothing on a clean export #}
  SELECT
    count_if({{ internal.empty_key | ident }}) AS empty_keys,
    count_if({{ internal.ragged | ident }}) AS ragged_rows,
    count_if({{ internal.blank | ident }}) AS blank_lines,
    min(CASE WHEN {{ internal.blank | ident }} THEN {{ internal.path | ident }} END) AS blank_file,
    min(CASE WHEN {{ internal.ragged | ident }} THEN {{ internal.sample | ident }} END) AS ragged_sample,
    min_by({{ internal.field_count | ident }}, CASE WHEN {{ internal.ragged | ident }} THEN {{ internal.sample | ident }} END) AS ragged_sample_fields,
    min_by({{ internal.path | ident }}, CASE WHEN {{ internal.ragged | ident }} THEN {{ internal.sample | ident }} END) AS ragged_file,
    min(CASE WHEN {{ internal.empty_key | ident }} THEN {{ internal.sample | ident }} END) AS empty_key_sample,
    min_by({{ internal.path | ident }}, CASE WHEN {{ internal.empty_key | ident }} THEN {{ internal.sample | ident }} END) AS empty_key_file
  FROM (
  SELECT
    *,
    CASE WHEN {{ internal.ragged | ident }} OR {{ internal.empty_key | ident }} THEN
      substr(array_join(transform({{ internal.fields | ident }}, x -> '"' || x || '"'), ', '), 1, 200)
    END AS {{ internal.sample | ident }},
    cardinality({{ internal.fields | ident }}) AS {{ internal.field_count | ident }}
  FROM measured
  WHERE {{ internal.suspect | ident }}
  ) AS bad
),
duplicated AS (
  SELECT {% if key | length == 1 %}{{ key[0] | ident }}{% else %}concat_ws('|'{% for k in key %}, {{ k | ident }}{% endfor %}){% endif %} AS key_text
  FROM measured
  WHERE NOT {{ internal.blank | ident }}
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
  b.empty_keys,
  b.ragged_rows,
  r.largest_item_bytes,
  r.largest_item_key,
  r.largest_record_bytes,
  r.largest_record_key,
  r.largest_pk_bytes,
  r.largest_pk_key,
  b.blank_lines,
  b.blank_file,
  b.ragged_sample,
  b.ragged_sample_fields,
  {{ columns | length }} AS declared_fields,
  b.ragged_file,
  b.empty_key_sample,
  b.empty_key_file
FROM rows_checked AS r
CROSS JOIN duplicates AS d
CROSS JOIN bad_rows AS b
