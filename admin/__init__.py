"""The staff web application (aiohttp): enrolment, login, reading and triage of reports.

It builds on the core's public services (:mod:`intake_bot.services`) and never imports
Telegram code.
"""
