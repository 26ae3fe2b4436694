# TokenSim-HPC: `make run` and `make test` set up everything they need on a
# Debian 12 machine (as root) and skip what is already there.
#
#   make run            default scenario on $(NP) ranks -> output/default.h5
#   make test           lint, serial tests, MPI tests at 2/3/4 ranks, Slurm test
#   make build          system packages + .venv + Cython kernels only
#   make bench          benchmark figures (JSON lines) for benchmarks/README.md

SHELL := /bin/bash
NP ?= 2
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps

# Debian packages: Open MPI, parallel HDF5, mpi4py, h5py with MPI, petsc4py,
# Cython, and a single-node Slurm for the Slurm test.
APT_PACKAGES := openmpi-bin libopenmpi-dev libhdf5-openmpi-dev python3-dev python3-venv \
	python3-numpy python3-scipy python3-pandas python3-mpi4py python3-h5py-mpi \
	python3-petsc4py python3-matplotlib cython3 slurmd slurmctld slurm-client munge build-essential
PIP_PACKAGES := "cython>=3,<4" pytest pytest-mpi pytest-timeout ruff cython-lint pycodestyle

# Open MPI refuses to run as root without these; yield when idle so that
# oversubscribed test runs on a 2-core machine do not spin.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_mpi_yield_when_idle := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
# Debian's petsc4py finds PETSc through PETSC_DIR (the real-scalar build).
export PETSC_DIR ?= $(firstword $(wildcard /usr/lib/petscdir/petsc*/x86_64-linux-gnu-real) /usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real)

MPIRUN := mpirun --oversubscribe --bind-to none
KERNEL_SOURCES := $(wildcard cython_kernels/*.pyx cython_kernels/*.pxd)

.PHONY: run test build system venv kernels lint test-serial test-mpi test-slurm bench clean

run: build
	@mkdir -p output
	$(MPIRUN) -n $(NP) $(PY) -m tokensim_hpc run defi -o output/default.h5 --overwrite

test: build lint test-serial test-mpi test-slurm

build: system venv kernels

system: $(STAMPS)/system
$(STAMPS)/system:
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: $(STAMPS)/system
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(PIP_PACKAGES)
	@touch $@

kernels: $(STAMPS)/kernels
$(STAMPS)/kernels: $(STAMPS)/venv setup.py $(KERNEL_SOURCES)
	$(PY) setup.py -q build_ext --inplace
	@touch $@

lint: build
	$(VENV)/bin/ruff check tokensim_hpc tests benchmarks setup.py
	PATH=$(VENV)/bin:$$PATH $(VENV)/bin/cython-lint --max-line-length 100 cython_kernels

test-serial: build
	$(PY) -m pytest -q -m "not mpi and not slurm" tests

# Rank 0 reports on the console (tests reduce their verdict over ranks); the
# other ranks' output goes to .stamps/ and is shown only when a run fails.
test-mpi: build
	@for n in 2 3 4; do \
		echo "== MPI tests on $$n ranks"; \
		rm -f $(STAMPS)/pytest-mpi-$$n-rank*.log; \
		$(MPIRUN) -n $$n sh -c 'if [ "$$OMPI_COMM_WORLD_RANK" = 0 ]; then \
			exec $(PY) -m pytest -q --color=no --with-mpi -m mpi tests; else \
			exec $(PY) -m pytest -q --color=no --with-mpi -m mpi tests \
			> $(STAMPS)/pytest-mpi-'$$n'-rank$$OMPI_COMM_WORLD_RANK.log 2>&1; fi' \
		|| { tail -n 40 $(STAMPS)/pytest-mpi-$$n-rank*.log; exit 1; }; \
	done

test-slurm: build
	$(PY) -m pytest -q -m slurm tests

bench: build
	$(PY) benchmarks/b1.py --ranks 2 --n 1000000 --ticks 50

clean:
	rm -rf build $(STAMPS) tokensim_hpc/_kernels/*.so cython_kernels/*.c
