CREATE DATABASE IF NOT EXISTS {{ database | hive_ident }}
