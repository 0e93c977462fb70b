ALTER TABLE classifications DROP COLUMN details;
