"""Prometheus scraping the control-plane API (and itself)."""

from __future__ import annotations

from collections.abc import Mapping

from switchyard.devenv.layout import HOST, DevLayout
from switchyard.devenv.process import ProcessSpec, find_binary, http_ok


class Prometheus:
    name = "prometheus"

    def __init__(self, layout: DevLayout) -> None:
        self.port = layout.ports["prometheus"]
        self.api_port = layout.ports["api"]
        self.dir = layout.data(self.name)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "prometheus.yml").write_text(f"""\
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["{HOST}:{self.port}"]}}]
  - job_name: switchyard-api
    static_configs: [{{targets: ["{HOST}:{self.api_port}"]}}]
""")

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [
                find_binary("prometheus"),
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--rules.alert.resend-delay=1s",
            ],
        )

    def ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready")

    def configure(self) -> None:
        """Scrape targets come from the config file written by ``prepare``."""

    def endpoints(self) -> Mapping[str, str]:
        return {"prometheus": self.url}
