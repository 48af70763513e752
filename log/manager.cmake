# LogManager sources are added to runnel_log here.
