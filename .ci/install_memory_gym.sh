#!/usr/bin/env bash
# Install Memory Gym 1.0.2 into the active Python environment, beside gymnasium 1.x.
#
# memory-gym 1.0.2 pins gymnasium==0.29.0 and pygame==2.4.0, yet runs unchanged on gymnasium 1.x: its code imports
# only gymnasium (spaces, register, seeding), numpy and pygame (pygame._sdl2, surfarray, math). So it is installed
# without its pins (--no-deps), and pygame comes from pygame-ce, the pygame fork that MiniGrid (rlgru[minigrid],
# rlgru[dev]) already installs; pygame and pygame-ce both provide the `pygame` module and must not be installed
# together. gymnasium and numpy come with rlgru. See docs/memory_suites.md.
set -euo pipefail
python -m pip install --quiet 'pygame-ce>=2.4'
python -m pip install --quiet --no-deps 'memory-gym==1.0.2'
# fail here, not in a test, if the install does not import on this gymnasium
PYGAME_HIDE_SUPPORT_PROMPT=1 python -c "import memory_gym, gymnasium; print('memory-gym 1.0.2 on gymnasium', gymnasium.__version__)"
