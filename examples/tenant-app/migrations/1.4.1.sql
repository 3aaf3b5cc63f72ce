-- 1.4.1: the backport of 2.0.1's currency fix to the 1.4 line: one change, one file.
\ir ../changes/currency.sql
