-- The retention job finds e-mails whose content is still kept without reading the rest.
CREATE INDEX emails_content_kept ON emails (created_at) WHERE body_text <> '';
