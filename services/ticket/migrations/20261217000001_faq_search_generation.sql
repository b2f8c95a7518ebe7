-- The FAQ's search generation: raised in the writing transaction by every
-- change to what a search can return (an entry added or removed, its text,
-- language, category or publication edited), never by votes or views.
-- Replicas keep SearchFaqs pages per generation (api/faqs/cache.rs) and
-- read it before serving one, so no replica serves a page from before an
-- edit that has committed.
CREATE TABLE faq_search_generation (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint  NOT NULL
);
INSERT INTO faq_search_generation (generation) VALUES (1);

CREATE FUNCTION faq_search_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE faq_search_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

-- Statement-level: a statement changing many entries raises it once.
CREATE TRIGGER faqs_search_changed
    AFTER INSERT OR DELETE OR UPDATE OF question, answer, language, category_id, published
    ON faqs FOR EACH STATEMENT EXECUTE FUNCTION faq_search_changed();
