ALTER TABLE comments DROP CONSTRAINT comments_parent_comment_id_fkey;
ALTER TABLE comments ADD CONSTRAINT comments_parent_comment_id_fkey
    FOREIGN KEY (parent_comment_id) REFERENCES comments (id) ON DELETE CASCADE;
DROP TABLE audit_log;
DROP TABLE suppressions;
