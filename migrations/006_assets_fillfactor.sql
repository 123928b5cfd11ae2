-- Every message rewrites its assets' rows (health_score and its time), so an asset's row is
-- updated as often as its devices report. With pages packed full (the default fillfactor 100)
-- a new row version rarely fits on its own page: the update goes elsewhere (not HOT), the
-- table fills with dead versions between vacuums, and each batch's lookup of its assets reads
-- all of them. Half of each page is kept free for the next versions, so that updates stay on
-- the page and prune the versions before them. Pages written from now on are filled to half;
-- `VACUUM FULL assets` repacks the existing ones (runbook: "The assets table").
ALTER TABLE assets SET (fillfactor = 50);
