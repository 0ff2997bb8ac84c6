"""Results made readable: the report record, Markdown, HTML, plots, JUnit and the verdict."""
