-- A picture file is known by its path alone, without the CDN host: Instagram serves the same
-- file from many hosts (scontent-<pop>.cdninstagram.com, instagram.f<pop>.fna.fbcdn.net), and a
-- scrape through another one added a row and downloaded the file again.

-- Rows that now name the same file of the same person merge into the one that got furthest:
-- downloaded first, then the newest (the one the fetcher reads).
DELETE FROM profile_pictures p
USING profile_pictures q
WHERE p.ig_profile_id = q.ig_profile_id
  AND p.id <> q.id
  AND regexp_replace(p.source_path, '^[^:/?#]+://[^/]*', '') = regexp_replace(q.source_path, '^[^:/?#]+://[^/]*', '')
  AND (q.content_sha256 IS NOT NULL, q.created_at, q.id) > (p.content_sha256 IS NOT NULL, p.created_at, p.id);

UPDATE profile_pictures SET source_path = regexp_replace(source_path, '^[^:/?#]+://[^/]*', '')
WHERE source_path ~ '^[^:/?#]+://';

-- Bytes only a merged-away row held (none is expected: the same file has the same bytes).
DELETE FROM picture_blobs b
WHERE NOT EXISTS (SELECT 1 FROM profile_pictures pp WHERE pp.content_sha256 = b.content_sha256);
