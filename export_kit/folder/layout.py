"""The names of the files an artifacts folder holds besides the ones its manifest lists: the reports and plots
that verify and bench write. Kept with the folder, not with the code that writes them, because the folder's
readers need them too: access decides where a report may go, build clears them from a reused folder."""

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
LATENCY_PNG = "latency.png"
BATCH_PNG = "latency_vs_batch.png"
CLASSES_PNG = "classes.png"
