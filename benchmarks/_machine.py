"""The lines that open every benchmark's output: where it ran, and how busy
the machine was (a timing means little without the load beside it)."""

import os
import platform

import torch


def device_description(device: str) -> str:
    """The GPU's name and CUDA version, or the CPU and its threads."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        return f"{name}; CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {torch.get_num_threads()} threads)"


def machine_lines(device: str) -> list[str]:
    """The device with torch's version, then the load average where the
    system has one."""
    lines = [f"{device_description(device)}; torch {torch.__version__}"]
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        lines.append(f"load average before the run: {load}")
    return lines
