"""Developer tooling, each module run from the project root as ``python -m scripts.<name>``.

Among them: ``scripts.stack`` (the local Apache Kafka + S3 stack on loopback, ``up|down|status|
env``), ``scripts.seed`` (uploads the sample series to S3 and replays it into Kafka) and
``scripts.run_local`` (``make run``). Their public names are imported from the modules
themselves (``from scripts.stack import Stack, StackConfig``).
"""

__all__: list[str] = []
