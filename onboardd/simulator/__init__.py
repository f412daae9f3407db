"""A local stand-in for Twilio's Messaging API, driven by a seeded behaviour profile."""

from onboardd.simulator.app import create_app, run_simulator, serve_app
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.state import STATE_KEY, STORE_KEY, SimState

__all__ = [
    "STATE_KEY",
    "STORE_KEY",
    "SimState",
    "SimulatorSettings",
    "create_app",
    "run_simulator",
    "serve_app",
]
