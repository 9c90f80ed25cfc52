"""Three kickoffs of a two-agent crew, then DONE (argv[1]) is written; the test scrapes."""

import sys
import time

from crewai.events import crewai_event_bus
from fakes import crew

for _ in range(3):
    crew(roles=("Researcher", "Writer")).kickoff()
crewai_event_bus.flush()
open(sys.argv[1], "w").close()
time.sleep(60)
