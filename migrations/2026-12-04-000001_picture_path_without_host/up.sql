-- A picture file is known by its path alone, without the CDN host: Instagram serves the same
-- file from many hosts (scontent-<pop>.cdninstagram.com, instagram.f<pop>.fna.fbcdn.net), and a
-- scrape through another one added a row and downloaded the file again.

-- Rows that now name the same file of the same person merge into the one that got furthest:
-- downloaded first, then the newest (the one the fetcher reads). The hashes of the rows merged
-- away are kept for the clean-up below.
CREATE TEMP TABLE merged_picture_hashes (content_sha256 bytea NOT NULL);
WITH gone AS (
    DELETE FROM profile_pictures p
    USING profile_pictures q
    WHERE p.ig_profile_id = q.ig_profile_id
      AND p.id <> q.id
      AND regexp_replace(p.source_path, '^[^:/?#]+://[^/]*', '') = regexp_replace(q.source_path, '^[^:/?#]+://[^/]*', '')
      AND (q.content_sha256 IS NOT NULL, q.created_at, q.id) > (p.content_sha256 IS NOT NULL, p.created_at, p.id)
    RETURNING p.content_sha256
)
INSERT INTO merged_picture_hashes SELECT content_sha256 FROM gone WHERE content_sha256 IS NOT NULL;

UPDATE profile_pictures SET source_path = coalesce(nullif(regexp_replace(source_path, '^[^:/?#]+://[^/]*', ''), ''), '/')
WHERE source_path ~ '^[^:/?#]+://';

-- A merged-away row whose bytes differed (another size of the same picture) was the only link
-- from its person to those bytes and their classification: both go, so that an erasure, which
-- finds them through the person's pictures, cannot miss them.
DELETE FROM classifications c
USING merged_picture_hashes m
WHERE c.content_sha256 = m.content_sha256
  AND NOT EXISTS (SELECT 1 FROM profile_pictures pp WHERE pp.content_sha256 = c.content_sha256);
DELETE FROM picture_blobs b
WHERE NOT EXISTS (SELECT 1 FROM profile_pictures pp WHERE pp.content_sha256 = b.content_sha256);
DROP TABLE merged_picture_hashes;
