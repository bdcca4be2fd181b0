-- A batch of sign-ups is stored by one statement, committed on its own (repository.store_batch):
-- when the events' rows are no longer as the batch decided, or someone signed up meanwhile,
-- that statement must fail as a whole. This raises, as a serialisation failure: decide again.
CREATE FUNCTION sign_up_batch_refused(reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'sign-up batch not stored: %', reason USING ERRCODE = 'serialization_failure';
END
$$;
