# poold: build, demo and test. `make demo` and `make test` install what is missing first.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libsystemd-dev libsqlite3-dev pkg-config python3-pip systemd tmux

.PHONY: all deps mqueue build release demo test test-reliability clean

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

# The notebook's counter cells on a private, temporary daemon.
demo: release
	scripts/demo.sh "$$($(SWIFT) build -c release --show-bin-path)"

test: deps mqueue
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The reliability suite alone (also part of `test`): faults, shutdown and restarts, history, hostile clients.
RELIABILITY = WorkerFaultTests|DaemonLifecycleTests|JobHistoryTests|JobHistoryStoreTests|HostileClientTests|FuzzTests
test-reliability: deps mqueue
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '$(RELIABILITY)'

clean:
	$(SWIFT) package clean

# Installation under systemd (see README, "Running under systemd"). PREFIX is where the binaries go;
# the unit, sysusers.d, tmpfiles.d and catalog files go to the vendor directories under /usr/lib, so
# that /etc stays the administrator's (`systemctl edit poold` drop-ins, enablement symlinks) and
# `systemctl revert` cannot delete the units. DESTDIR stages everything under another root (packaging);
# only a direct install (no DESTDIR) creates the user and tells a running systemd.
PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= /usr/lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
CATALOGDIR ?= /usr/lib/systemd/catalog

.PHONY: install uninstall

install: release
	@bin="$$($(SWIFT) build -c release --show-bin-path)" && \
		install -D -m 0755 "$$bin/poold" "$(DESTDIR)$(PREFIX)/bin/poold" && \
		install -D -m 0755 "$$bin/poolctl" "$(DESTDIR)$(PREFIX)/bin/poolctl"
	install -d -m 0755 "$(DESTDIR)$(UNITDIR)"
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' systemd/poold.service > "$(DESTDIR)$(UNITDIR)/poold.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/poold.service"
	install -m 0644 systemd/poold.socket "$(DESTDIR)$(UNITDIR)/poold.socket"
	install -D -m 0644 systemd/poold.sysusers "$(DESTDIR)$(SYSUSERSDIR)/poold.conf"
	@if [ -f systemd/poold.tmpfiles ]; then \
		install -D -m 0644 systemd/poold.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/poold.conf"; fi
	@if [ -f systemd/poold.catalog ]; then \
		install -D -m 0644 systemd/poold.catalog "$(DESTDIR)$(CATALOGDIR)/poold.catalog"; fi
	@if [ -z "$(DESTDIR)" ]; then \
		echo "systemd-sysusers $(SYSUSERSDIR)/poold.conf"; systemd-sysusers "$(SYSUSERSDIR)/poold.conf" || exit 1; \
		if [ -f "$(TMPFILESDIR)/poold.conf" ]; then systemd-tmpfiles --create "$(TMPFILESDIR)/poold.conf" || exit 1; fi; \
		if [ -f "$(CATALOGDIR)/poold.catalog" ] && command -v journalctl >/dev/null; then journalctl --update-catalog || exit 1; fi; \
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
		"$(DESTDIR)$(CATALOGDIR)/poold.catalog"; do \
		if [ -e "$$f" ]; then echo "rm $$f"; rm -f "$$f"; fi; \
	done; \
	if [ -z "$(DESTDIR)" ]; then \
		if [ -n "$$catalog" ] && command -v journalctl >/dev/null; then journalctl --update-catalog; fi; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi
