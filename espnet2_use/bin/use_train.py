"""Training of USE models: ``python -m espnet2_use.bin.use_train --config ...``.

ESPnet's trainer with the ``use`` task: ``--resume``, ``--init_param``, ``--ngpu``
and torch.distributed (``torchrun ... --dist_backend gloo`` on CPU) work as in any
ESPnet task.
"""
from typing import List, Optional

import espnet2_use  # noqa: F401
from espnet2_use.tasks.use import USETask


def get_parser():
    return USETask.get_parser()


def main(cmd: Optional[List[str]] = None) -> None:
    USETask.main(cmd=cmd)


if __name__ == "__main__":
    main()
