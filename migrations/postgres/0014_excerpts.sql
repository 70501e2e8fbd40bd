-- Reports that hold only the opening of their post (an archive page's or a
-- summary-only feed item's excerpt), and the campaigns allowed to send one
-- (`campaign create --allow-excerpt`): the scheduler pauses any other
-- campaign of an excerpt instead of starting it.
ALTER TABLE reports ADD COLUMN excerpt BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE campaigns ADD COLUMN allow_excerpt BOOLEAN NOT NULL DEFAULT FALSE;
