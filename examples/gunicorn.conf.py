# gunicorn.conf.py -- read by `ferrocorn -c gunicorn.conf.py manage:app` (and by gunicorn).
# The address and port to bind, the number of worker processes and of threads per worker.
bind = "127.0.0.1:8000"
workers = 2
threads = 2
