"""Prometheus metrics of one app (its own registry, so several apps in one process do not collide).

    tutorial_lib_requests_total{route, status}       requests answered, by route and HTTP status
    tutorial_lib_request_duration_seconds{route}     latency histogram
    tutorial_lib_queue_depth                         requests waiting for the model
    tutorial_lib_requests_in_flight                  requests being handled
    tutorial_lib_batch_size                          images per model call (micro-batching)
    tutorial_lib_model_ready                         1 once the model is loaded and warmed up
    process_resident_memory_bytes, ...               the process collector (Linux)
"""
import time

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, routes, worker):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.routes = set(routes)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("tutorial_lib_requests", "HTTP requests answered", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("tutorial_lib_request_duration_seconds", "time from request to the response's "
                                 "first byte", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("tutorial_lib_requests_in_flight", "requests being handled", registry=self.registry)
        queue = Gauge("tutorial_lib_queue_depth", "requests waiting for the model", registry=self.registry)
        queue.set_function(lambda: worker.depth)
        ready = Gauge("tutorial_lib_model_ready", "1 once the model is loaded and warmed up", registry=self.registry)
        ready.set_function(lambda: float(worker.ready.is_set()))
        self.batch_size = Histogram("tutorial_lib_batch_size", "images per model call", buckets=(1, 2, 4, 8, 16, 32),
                                    registry=self.registry)

    def route(self, path):
        return path if path in self.routes else "other"  # unknown paths must not create a series each

    def observe(self, path, status, started):
        route = self.route(path)
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)

    def exposition(self):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
