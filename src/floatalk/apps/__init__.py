"""Applications over the library: the job spec shared by the HTTP API, the web page and batch runs."""
