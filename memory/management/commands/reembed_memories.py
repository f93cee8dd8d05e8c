from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from memory.embedders import EmbedderUnavailable, get_embedder
from memory.management.commands._common import agent_id, organization_id
from memory.services import memories_reembed


class Command(BaseCommand):
    help = (
        "Re-embed every memory (and knowledge chunk) with another embedder, in batches, each committed on its "
        "own: stop it any time and run it again to continue. Then set MEMORY_EMBEDDER to the same value "
        "(search only compares vectors of the configured model) and run it once more for rows stored meanwhile."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--embedder", required=True, help='"local" or "openai:text-embedding-3-small".')
        parser.add_argument("--batch-size", type=int, default=256)
        parser.add_argument("--agent", help="Only this agent's memories (id).")
        parser.add_argument("--organization", help="Only this organization (slug or id).")
        parser.add_argument("--no-knowledge", action="store_true", help="Leave knowledge-base chunks alone.")
        parser.add_argument("--limit", type=int, help="Stop after this many rows of each kind.")

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            target = get_embedder(options["embedder"])
        except EmbedderUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"target model: {target.name}")
        try:
            results = memories_reembed(
                embedder_spec=options["embedder"],
                batch_size=options["batch_size"],
                agent_id=agent_id(options["agent"]),
                organization_id=organization_id(options["organization"]),
                include_knowledge=not options["no_knowledge"],
                limit=options["limit"],
                progress=self.stdout.write,
            )
        except EmbedderUnavailable as exc:
            raise CommandError(f"{exc} (the rows done so far are kept; run the command again to continue)") from exc
        for label, result in results.items():
            self.stdout.write(self.style.SUCCESS(f"{label}: {result.done} of {result.total} re-embedded"))
