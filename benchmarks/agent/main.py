"""The benchmark agent: a Foundry-hosted agent on Microsoft Agent Framework (never run here)."""

import asyncio
import os

import yaml
from agent_framework.foundry import FoundryChatClient
from azure.identity.aio import DefaultAzureCredential


async def main() -> None:
    with open(os.path.join(os.path.dirname(__file__), "agent.yaml")) as stream:
        config = yaml.safe_load(stream)
    async with DefaultAzureCredential() as credential:
        client = FoundryChatClient(credential=credential)
        agent = client.as_agent(name=config["name"], instructions=config["instructions"])
        print(await agent.run("hello"))


if __name__ == "__main__":
    asyncio.run(main())
