"""The world changes from y = x to y = 2x; labels flow back; a new version serves 2x.

Run after make_model.py, from this folder: python learn_inprocess.py
"""

import asyncio

from rendezvous import Rendezvous, load_deployment
from rendezvous.feedback import record_feedback
from rendezvous.learning import DeploymentLearner


async def main() -> None:
    dep = load_deployment("prices.yaml")
    async with Rendezvous([dep]) as rv:
        prices = rv.get("prices")
        learner = DeploymentLearner(dep, archive=prices.archive)  # normally its own process
        await asyncio.to_thread(learner.start)  # publishes the file's model as version 1
        try:
            for i in range(60):
                x = float(i % 10)
                answer = await prices.predict_one([x])
                await record_feedback(prices, [(answer.request_id, 2 * x)])
            prices.archive.flush()
            report = await asyncio.to_thread(learner.step)
            print([(d["trigger"], d["accepted"], d["version"]) for d in report.decisions])
            await rv.followers["prices"].sync()  # the serving side picks the new version up
            answer = await prices.predict_one([3.0])
            print(answer.prediction, answer.version)  # 6.0 2
        finally:
            await asyncio.to_thread(learner.stop)


asyncio.run(main())
