-- Abuse limits every replica of a service shares (stolive_shared.ratelimit): a token bucket
-- per (scope, key), e.g. ('sign-up', client address). A missing row is a full bucket.
CREATE TABLE rate_limits (
    scope      text NOT NULL,
    key        text NOT NULL,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX rate_limits_updated ON rate_limits (updated_at);

-- Takes cost from each (scope, key) bucket in order, after refilling it at its rate since it
-- was last touched (capped at its burst); one call for the requests of a whole batch. Returns
-- per entry the seconds to wait: 0 when taken, else until the bucket holds the cost (nothing
-- is taken then). Rows are locked in the given order; callers sort by (scope, key).
CREATE FUNCTION rate_limit_take(
    p_scopes text[], p_keys text[], p_costs double precision[],
    p_bursts double precision[], p_per_second double precision[]
) RETURNS TABLE (ordinal integer, wait_s double precision)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    available double precision;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        INSERT INTO rate_limits AS r (scope, key, tokens, updated_at)
        VALUES (p_scopes[i], p_keys[i], p_bursts[i], clock_timestamp())
        ON CONFLICT (scope, key) DO UPDATE
            SET tokens = least(
                    p_bursts[i],
                    r.tokens + greatest(0, extract(epoch FROM clock_timestamp() - r.updated_at))
                               * p_per_second[i]),
                updated_at = clock_timestamp()
        RETURNING tokens INTO available;
        ordinal := i;
        IF available >= p_costs[i] THEN
            UPDATE rate_limits SET tokens = available - p_costs[i]
            WHERE scope = p_scopes[i] AND key = p_keys[i];
            wait_s := 0;
        ELSE
            wait_s := (p_costs[i] - available) / greatest(p_per_second[i], 1e-9);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
