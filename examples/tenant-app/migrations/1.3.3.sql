-- 1.3.3: the backport of 2.0.1's currency fix to the 1.3 line: one change, one file.
\ir ../changes/currency.sql
