-- The regions of the events made before organisers.event_scope existed; from now on every
-- change of an event writes its row there in the same transaction.
INSERT INTO organisers.event_scope (event_id, region_codes)
SELECT e.id, COALESCE(array_agg(r.region_code ORDER BY r.region_code)
                      FILTER (WHERE r.region_code IS NOT NULL), '{}')
FROM events e LEFT JOIN event_regions r ON r.event_id = e.id
GROUP BY e.id
ON CONFLICT (event_id) DO NOTHING;
