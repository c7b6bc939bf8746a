"""A native Tornado application for ``-k tornado``."""
import asyncio

import tornado.web

_state = {"inside": 0, "max": 0}


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("hello " + self.get_argument("name", "world"))


class Hold(tornado.web.RequestHandler):
    """Waits (asynchronously, 200 ms at a time) until n requests are inside together."""

    async def get(self):
        n = int(self.get_argument("n", "1"))
        _state["inside"] += 1
        _state["max"] = max(_state["max"], _state["inside"])
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            await asyncio.sleep(0.2)
            while _state["max"] < n and loop.time() < deadline:
                await asyncio.sleep(0.2)
        finally:
            _state["inside"] -= 1
        self.write({"held": True})


class Stats(tornado.web.RequestHandler):
    def get(self):
        self.write(dict(_state))


class Stream(tornado.web.RequestHandler):
    async def get(self):
        for i in range(3):
            self.write("part%d\n" % i)
            await self.flush()
        self.finish()


class Echo(tornado.web.RequestHandler):
    def post(self):
        self.set_header("X-Remote-Ip", self.request.remote_ip)
        self.write(self.request.body)


@tornado.web.stream_request_body
class Upload(tornado.web.RequestHandler):
    def prepare(self):
        self.received = 0

    def data_received(self, chunk):
        self.received += len(chunk)

    def put(self):
        self.write("got %d" % self.received)


app = tornado.web.Application([
    (r"/upload", Upload),
    (r"/", Hello), (r"/hold", Hold), (r"/stats", Stats), (r"/stream", Stream), (r"/echo", Echo),
])
