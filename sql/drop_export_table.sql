DROP TABLE IF EXISTS {{ database | hive_ident }}.{{ table | hive_ident }}
