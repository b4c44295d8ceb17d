# poold: build, demo and test. `make demo` and `make test` install what is missing first.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libsystemd-dev pkg-config python3-pip

.PHONY: all deps mqueue build release demo test clean

all: build

# Debian packages for the build (libsystemd) and the Python varlink client the tests call.
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

clean:
	$(SWIFT) package clean
