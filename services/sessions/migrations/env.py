from common.migrations import run_env
from services.sessions.models import Base

run_env(Base.metadata)
