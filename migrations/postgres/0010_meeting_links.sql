-- Why each meeting's report is linked to it: 'hand', or the evidence
-- ('meeting_date', 'title', 'published', 'opening_lines'); and the reports
-- unlinked from a meeting by hand, never to be linked to it again on
-- evidence. Links made before were made for being published after the
-- meeting; they are worked out afresh on evidence at the next linking.
ALTER TABLE meetings ADD COLUMN linked_by TEXT;
UPDATE meetings SET linked_by = 'published' WHERE report_id IS NOT NULL;

CREATE TABLE meeting_unlinked_reports (
    meeting_id BIGINT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    report_id  BIGINT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    PRIMARY KEY (meeting_id, report_id)
);

-- That linking also gave an undated report its meeting's date. A feed item
-- never states one, so a feed report's date came from it: it is undone.
UPDATE reports SET meeting_date = NULL WHERE source_kind = 'feed';
