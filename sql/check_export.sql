{#-
  Data checks on one export version, as a single row:
  row_count; duplicate_keys (key values occurring more than once) with a sorted sample of up
  to five; empty_keys (a key column NULL or ''); ragged_rows (a missing field makes the last
  declared column NULL, since OpenCSVSerde reads an empty field as ''; an extra field lands in
  the extra column); and, for the largest row by each AWS size limit, an upper bound of its size
  in UTF-8 bytes and its key: the target item (DynamoDB counts names and values), the Kinesis
  record carrying the row's op alone (aggregation framing, JSON data, partition key twice) and
  the item's partition key. *_overhead is what every row
  adds whatever its values (snapcdc.limits, NULLs included); the row adds its values' bytes and
  what JSON escaping adds to them. The escaped bytes (quote and backslash doubled, a control
  character as six) are counted only for rows that six bytes per byte would put over a limit.
-#}
WITH rows_checked AS (
  SELECT
    count(*) AS row_count,
    count_if({% for k in key %}{{ k | ident }} IS NULL OR {{ k | ident }} = ''{% if not loop.last %} OR {% endif %}{% endfor %}) AS empty_keys,
    count_if({{ columns[-1] | ident }} IS NULL OR {{ extra_column | ident }} IS NOT NULL) AS ragged_rows,
{% if size_limits %}
    max(_snapcdc_item_bytes) AS largest_item_bytes,
    max_by(_snapcdc_key_text, _snapcdc_item_bytes) AS largest_item_key,
    max(_snapcdc_record_bytes) AS largest_record_bytes,
    max_by(_snapcdc_key_text, _snapcdc_record_bytes) AS largest_record_key,
    max(_snapcdc_pk_bytes) AS largest_pk_bytes,
    max_by(_snapcdc_key_text, _snapcdc_pk_bytes) AS largest_pk_key
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
    {{ item_overhead }} + _snapcdc_row_bytes + 2 * _snapcdc_key_bytes{% if key | length > 1 %}

      + 2 * (CASE WHEN {{ item_overhead }} + _snapcdc_row_bytes + 12 * _snapcdc_key_bytes > {{ item_limit }}
        THEN {% for k in key %}coalesce(length(to_utf8(regexp_replace(regexp_replace({{ k | ident }}, '["\\]', '__'), '[\x00-\x1f]', '______'))), 0){% if not loop.last %} + {% endif %}{% endfor %} - _snapcdc_key_bytes
        ELSE 5 * _snapcdc_key_bytes END){% endif %} AS _snapcdc_item_bytes,
    {{ record_overhead }}
      + (CASE WHEN {{ record_overhead }} + 6 * (_snapcdc_row_bytes + _snapcdc_key_bytes) > {{ record_limit }}
        THEN {% for c in columns + key %}coalesce(length(to_utf8(regexp_replace(regexp_replace({{ c | ident }}, '["\\]', '__'), '[\x00-\x1f]', '______'))), 0){% if not loop.last %} + {% endif %}{% endfor %}

        ELSE 6 * (_snapcdc_row_bytes + _snapcdc_key_bytes) END) AS _snapcdc_record_bytes,
    {{ pk_overhead }} + _snapcdc_key_bytes{% if key | length > 1 %}

      + (CASE WHEN {{ pk_overhead }} + 6 * _snapcdc_key_bytes > {{ pk_limit }}
        THEN {% for k in key %}coalesce(length(to_utf8(regexp_replace(regexp_replace({{ k | ident }}, '["\\]', '__'), '[\x00-\x1f]', '______'))), 0){% if not loop.last %} + {% endif %}{% endfor %} - _snapcdc_key_bytes
        ELSE 5 * _snapcdc_key_bytes END){% endif %} AS _snapcdc_pk_bytes
  FROM (
  SELECT
    {% for c in columns %}{{ c | ident }}, {% endfor %}{{ extra_column | ident }},
    ({% for c in columns %}coalesce(length(to_utf8({{ c | ident }})), 0){% if not loop.last %} + {% endif %}{% endfor %}) AS _snapcdc_row_bytes,
    ({% for k in key %}coalesce(length(to_utf8({{ k | ident }})), 0){% if not loop.last %} + {% endif %}{% endfor %}) AS _snapcdc_key_bytes,
    ({% if key | length == 1 %}{{ key[0] | ident }}{% else %}concat_ws('|'{% for k in key %}, {{ k | ident }}{% endfor %}){% endif %}) AS _snapcdc_key_text
  FROM {{ database | ident }}.{{ table | ident }}
  {% if files %}
  WHERE "$path" IN ({% for f in files %}{{ f | literal }}{% if not loop.last %}, {% endif %}{% endfor %})
  {% endif %}
  ) AS measured
  ) AS sized
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
  r.ragged_rows,
  r.largest_item_bytes,
  r.largest_item_key,
  r.largest_record_bytes,
  r.largest_record_key,
  r.largest_pk_bytes,
  r.largest_pk_key
FROM rows_checked AS r
CROSS JOIN duplicates AS d
