-- The classifier's whole answer (probabilities, abstention reason, face box) next to the
-- columns used for counting, so an estimate can be recomputed from stored results.
ALTER TABLE classifications ADD COLUMN details jsonb;
