-- Host-less paths stay: the hosts are not kept, and the earlier code reads these rows as they
-- are (a later scrape through a host adds one row per picture, as it did before).
SELECT 1;
