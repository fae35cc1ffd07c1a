# The entry point for developers and users. Each target runs a script under scripts/ (or
# sandbox/); the logic lives there. See README.md.
.PHONY: run test test-busy test-unit lint lock sandbox-start sandbox-stop pg-start pg-stop

run:            ## install into .venv and start the adapter service (SQLite by default)
	@scripts/run

test:           ## install, start sandbox + PostgreSQL, run ALL tests, stop what it started
	@scripts/test

test-busy:      ## make test while busy loops hold every core (a busy machine); prints its time
	@scripts/test-busy

test-unit:      ## unit tests only: no sandbox, no PostgreSQL, no network
	@scripts/test-unit

lint:           ## ruff (rules + format check), mypy --strict, nothing read outside the repository
	@scripts/lint

lock:           ## remake requirements/*.txt from pyproject.toml (ARGS=--upgrade: newest versions)
	@scripts/lock $(ARGS)

sandbox-start:  ## start the HAPI FHIR sandbox in the background, print its base URL
	@sandbox/start

sandbox-stop:   ## stop the HAPI FHIR sandbox
	@sandbox/stop

pg-start:       ## start the throwaway test PostgreSQL, print its URL
	@scripts/pg-start

pg-stop:        ## stop the test PostgreSQL and delete its data
	@scripts/pg-stop
