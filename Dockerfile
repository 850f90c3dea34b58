# One image for the API and the worker; docker-compose.yml and deploy/ pick the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY redrive ./redrive
COPY redrive_cli ./redrive_cli
COPY worker.py ./
RUN pip install --no-cache-dir . && useradd --uid 10001 redrive
USER redrive
ENV REDRIVE_API_HOST=0.0.0.0
EXPOSE 8000
CMD ["python", "worker.py"]
