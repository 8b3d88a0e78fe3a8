"""Plain-Python core: arm physics, the reach task, the observation/action contract and the agent.

Nothing under ``core`` imports ROS; the gymnasium env, the benchmarks and the ROS nodes all build on it.
"""
