# shellcheck shell=bash
# Example site environment for slurm/run.sbatch.
#
# Copy it to slurm/site-env.sh (the default run.sbatch looks for, relative to
# the folder you submit from) or anywhere else and point TOKENSIM_SITE_ENV at it:
#
#   cp slurm/site-env.example.sh slurm/site-env.sh    # then edit
#   TOKENSIM_SITE_ENV=$HOME/tokensim-env.sh sbatch slurm/run.sbatch b1
#
# run.sbatch sources this file in bash on the first node before it starts the
# simulator, so everything exported here reaches every MPI rank. Keep it to
# environment setup: no output files, no `exit`.

# ---- Modules ---------------------------------------------------------------
# On clusters with environment modules (Lmod), load the same compiler, MPI and
# parallel HDF5 that mpi4py and h5py were built against. Names differ per site;
# `module avail openmpi hdf5` lists yours. Examples:
#
# module purge
# module load gcc/12.2.0
# module load openmpi/4.1.4
# module load hdf5/1.12.2-mpi       # the parallel (MPI) build of HDF5
# module load petsc/3.18.5          # only if petsc4py comes from a module

# ---- Python ------------------------------------------------------------------
# Activate the virtual environment that has tokensim_hpc, mpi4py, h5py and
# petsc4py (on a cluster, build mpi4py and h5py against the modules above).
# The path is an example; the repository's own one is .venv.
#
# source "$HOME/venvs/tokensim/bin/activate"
#
# Or choose the interpreter without a venv:
#
# export TOKENSIM_PYTHON=/opt/tokensim/bin/python

# ---- Open MPI ------------------------------------------------------------------
# Open MPI reads any MCA parameter from OMPI_MCA_<name>. Examples:
#
# export OMPI_MCA_btl=^openib            # silence warnings on nodes without InfiniBand
# export OMPI_MCA_mpi_yield_when_idle=1  # when ranks share cores (oversubscribed)
# export OMPI_MCA_rmaps_base_oversubscribe=1  # allow more ranks than cores (mpirun)
#
# mpirun refuses to run as root; only in containers or test machines:
# export OMPI_ALLOW_RUN_AS_ROOT=1
# export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# ---- Launcher ------------------------------------------------------------------
# export TOKENSIM_LAUNCHER=srun          # or mpirun
# export TOKENSIM_LAUNCHER_ARGS="--bind-to none"   # extra launcher options

# ---- PETSc ---------------------------------------------------------------------
# petsc4py finds PETSc through PETSC_DIR (and PETSC_ARCH for in-tree builds).
# Debian's packages (the real-scalar build):
#
# export PETSC_DIR=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real
# export PETSC_ARCH=
#
# A site module usually sets PETSC_DIR itself.

# ---- Threads -------------------------------------------------------------------
# One MPI rank per core: keep BLAS/OpenMP from starting more threads per rank.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
