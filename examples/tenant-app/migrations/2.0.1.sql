-- 2.0.1: the currency fix, made here and backported to 1.3.3 and 1.4.1: one change, one file.
\ir ../changes/currency.sql
