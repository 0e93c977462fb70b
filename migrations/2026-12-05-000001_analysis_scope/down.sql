DROP VIEW audience_comments;
DROP TABLE analysis_comments;
DROP TABLE analysis_posts;
ALTER TABLE analyses DROP COLUMN scope;
ALTER TABLE posts DROP COLUMN coauthors;
