# poold: build, demo and test. `make demo` and `make test` install what is missing first.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libsystemd-dev libsqlite3-dev pkg-config python3-pip systemd tmux

.PHONY: all deps mqueue build release demo race-rate bench test test-reliability chaos soak clean

all: build

# Debian packages for the build (libsystemd; libsqlite3, which GRDB links for the job history),
# the Python varlink client the tests call, and tmux (a terminal for the tests of poolctl's live output).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@python3 -c 'import varlink' 2>/dev/null || python3 -m pip install --quiet --root-user-action=ignore varlink 2>/dev/null \
		|| python3 -m pip install --quiet --break-system-packages varlink

# The mqueue filesystem shows every POSIX message queue; the tests use it to prove nothing leaks.
mqueue:
	@mountpoint -q /dev/mqueue || { $(SUDO) mkdir -p /dev/mqueue && $(SUDO) mount -t mqueue none /dev/mqueue; }

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The notebook, cell by cell, on a private, temporary daemon (under a minute).
demo: release
	scripts/demo.sh "$$($(SWIFT) build -c release --show-bin-path)"

# Benchmark: in how many of 100 runs the unsafe counter loses updates at the notebook's parameters.
race-rate: release
	scripts/race-rate.sh "$$($(SWIFT) build -c release --show-bin-path)" 100

# Benchmark: poold beside C and Python references doing the same work, interleaved, medians of
# BENCH_RUNS runs each; prints one table and writes bench/results/<time>.json (see bench/run).
BENCH_RUNS ?= 5
bench: deps release
	BENCH_RUNS=$(BENCH_RUNS) bench/run --bin "$$($(SWIFT) build -c release --show-bin-path)"

test: deps mqueue
	$(SWIFT) build --build-tests
	$(SWIFT) build --product generate-manual
	$(SWIFT) test --skip-build

# The reliability suite alone (also part of `test`): faults, shutdown and restarts, history, hostile clients.
RELIABILITY = WorkerFaultTests|ChaosTests|DaemonLifecycleTests|JobHistoryTests|JobHistoryStoreTests|HostileClientTests|IPCResourceTests|FuzzTests
test-reliability: deps mqueue
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '$(RELIABILITY)'

# Random SIGKILLs of busy workers during prodcons and locked counter jobs (16 trials in `test`).
# Prints a table (kind, kill pattern, trials, exact, failed, wrong, hung) and the seed;
# CHAOS_SEED=S replays a run's choices, CHAOS_TRIAL=N one trial of it.
CHAOS_TRIALS ?= 200
chaos: deps mqueue
	$(SWIFT) build --build-tests
	CHAOS_TRIALS=$(CHAOS_TRIALS) $(SWIFT) test --skip-build --filter ChaosTests

# One long-lived release daemon: SOAK_JOBS jobs of every kind from several clients, with cancels,
# resizes and reloads; every result exact, descriptors, threads, RSS and IPC objects flat. Prints
# its figures. `make test` runs a short one (400 jobs) on the debug build.
SOAK_JOBS ?= 10000
soak: deps mqueue release
	$(SWIFT) build --build-tests
	POOLD_SOAK_JOBS=$(SOAK_JOBS) POOLD_BIN_DIR="$$($(SWIFT) build -c release --show-bin-path)" \
		$(SWIFT) test --skip-build --filter SoakTests

clean:
	$(SWIFT) package clean

# Installation under systemd (see README, "Running under systemd"). PREFIX is where everything goes,
# in the places systemd looks for that prefix: /usr/local/lib/systemd/system (and sysusers.d,
# tmpfiles.d, systemd/catalog under /usr/local/lib) for /usr/local, /usr/lib/... for /usr. /etc stays
# the administrator's (`systemctl edit poold` drop-ins, enablement symlinks). Man pages poold(8) and
# poolctl(1) are generated from the argument parsers, completions for bash, zsh and fish from poolctl.
# DESTDIR stages everything under another root (packaging); only a direct install (no DESTDIR)
# creates the user and tells a running systemd. install builds (release) but fetches nothing: run
# `make deps` first on a new machine. BINARIES=DIR installs binaries already built there instead.
PREFIX ?= /usr/local
DESTDIR ?=
BINARIES ?=
SYSTEMDLIBDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib,$(PREFIX)/lib)
UNITDIR ?= $(SYSTEMDLIBDIR)/systemd/system
SYSUSERSDIR ?= $(SYSTEMDLIBDIR)/sysusers.d
TMPFILESDIR ?= $(SYSTEMDLIBDIR)/tmpfiles.d
CATALOGDIR ?= $(SYSTEMDLIBDIR)/systemd/catalog
MANDIR ?= $(PREFIX)/share/man
BASHCOMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPLETIONDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPLETIONDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# The manuals' date: the last commit's, so that the same sources make the same pages.
MANDATE := $(shell git log -1 --format=%cs 2>/dev/null || date +%F)

.PHONY: install uninstall

install:
	@set -e; bin="$(BINARIES)"; \
	if [ -z "$$bin" ]; then \
		$(SWIFT) build -c release --product poold; $(SWIFT) build -c release --product poolctl; \
		$(SWIFT) build -c release --product generate-manual; bin="$$($(SWIFT) build -c release --show-bin-path)"; \
	fi; \
	install -D -m 0755 "$$bin/poold" "$(DESTDIR)$(PREFIX)/bin/poold"; \
	install -D -m 0755 "$$bin/poolctl" "$(DESTDIR)$(PREFIX)/bin/poolctl"; \
	install -d -m 0755 "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man8"; \
	"$$bin/generate-manual" "$$bin/poolctl" --section 1 --date $(MANDATE) -o "$(DESTDIR)$(MANDIR)/man1"; \
	"$$bin/generate-manual" "$$bin/poold" --section 8 --date $(MANDATE) -o "$(DESTDIR)$(MANDIR)/man8"; \
	sed -i 's/^$$/.Pp/' "$(DESTDIR)$(MANDIR)/man1/poolctl.1" "$(DESTDIR)$(MANDIR)/man8/poold.8"; \
	chmod 0644 "$(DESTDIR)$(MANDIR)/man1/poolctl.1" "$(DESTDIR)$(MANDIR)/man8/poold.8"; \
	install -d -m 0755 "$(DESTDIR)$(BASHCOMPLETIONDIR)" "$(DESTDIR)$(ZSHCOMPLETIONDIR)" "$(DESTDIR)$(FISHCOMPLETIONDIR)"; \
	"$$bin/poolctl" --generate-completion-script bash > "$(DESTDIR)$(BASHCOMPLETIONDIR)/poolctl"; \
	"$$bin/poolctl" --generate-completion-script zsh > "$(DESTDIR)$(ZSHCOMPLETIONDIR)/_poolctl"; \
	"$$bin/poolctl" --generate-completion-script fish > "$(DESTDIR)$(FISHCOMPLETIONDIR)/poolctl.fish"
	install -d -m 0755 "$(DESTDIR)$(UNITDIR)"
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' systemd/poold.service > "$(DESTDIR)$(UNITDIR)/poold.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/poold.service"
	install -m 0644 systemd/poold.socket "$(DESTDIR)$(UNITDIR)/poold.socket"
	install -D -m 0644 systemd/poold.sysusers "$(DESTDIR)$(SYSUSERSDIR)/poold.conf"
	install -D -m 0644 systemd/poold.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/poold.conf"
	install -D -m 0644 systemd/poold.catalog "$(DESTDIR)$(CATALOGDIR)/poold.catalog"
	@if [ -z "$(DESTDIR)" ]; then \
		echo "systemd-sysusers $(SYSUSERSDIR)/poold.conf"; systemd-sysusers "$(SYSUSERSDIR)/poold.conf" || exit 1; \
		systemd-tmpfiles --create "$(TMPFILESDIR)/poold.conf" || exit 1; \
		if command -v journalctl >/dev/null; then journalctl --update-catalog || exit 1; fi; \
		if [ -d /run/systemd/system ]; then echo "systemctl daemon-reload"; systemctl daemon-reload; \
		else echo "systemd is not running: no daemon-reload"; fi; \
	fi

# Removes what install put there, disabling the units first. The poold user, /var/lib/poold and
# /etc/poold.conf stay: files may still belong to the user, and the configuration is the administrator's.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -f "$(UNITDIR)/poold.service" ]; then \
		if [ -d /run/systemd/system ]; then systemctl disable --now poold.socket poold.service || true; \
		else systemctl disable poold.socket poold.service 2>/dev/null || true; fi; \
	fi
	@catalog=; [ -f "$(DESTDIR)$(CATALOGDIR)/poold.catalog" ] && catalog=yes; \
	for f in "$(DESTDIR)$(PREFIX)/bin/poold" "$(DESTDIR)$(PREFIX)/bin/poolctl" \
		"$(DESTDIR)$(UNITDIR)/poold.service" "$(DESTDIR)$(UNITDIR)/poold.socket" \
		"$(DESTDIR)$(SYSUSERSDIR)/poold.conf" "$(DESTDIR)$(TMPFILESDIR)/poold.conf" \
		"$(DESTDIR)$(CATALOGDIR)/poold.catalog" "$(DESTDIR)$(MANDIR)/man1/poolctl.1" "$(DESTDIR)$(MANDIR)/man8/poold.8" \
		"$(DESTDIR)$(BASHCOMPLETIONDIR)/poolctl" "$(DESTDIR)$(ZSHCOMPLETIONDIR)/_poolctl" "$(DESTDIR)$(FISHCOMPLETIONDIR)/poolctl.fish"; do \
		if [ -e "$$f" ]; then echo "rm $$f"; rm -f "$$f"; fi; \
	done; \
	if [ -z "$(DESTDIR)" ]; then \
		if [ -n "$$catalog" ] && command -v journalctl >/dev/null; then journalctl --update-catalog; fi; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi
